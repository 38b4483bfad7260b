// Draws the time series a page embeds as JSON (<script type="application/json" id="chart-data">)
// with the vendored uPlot: one chart per entry, into <div data-chart="ID">. No network access.
(function () {
  "use strict";
  var PALETTE = ["#2f6fb3", "#e07b24", "#3a9e8f", "#c0392b", "#5a9c3a", "#c9a227", "#8e5ea2",
                 "#7f8c8d", "#d35493", "#1f4e79"];
  var UNITS = {
    usd: function (v) { return v == null ? "–" : "$" + (Math.abs(v) >= 1 || v === 0 ? v.toFixed(2) : v.toPrecision(2)); },
    ms: function (v) { return v == null ? "–" : Math.round(v) + " ms"; },
    ratio: function (v) { return v == null ? "–" : (v * 100).toFixed(1) + "%"; },
    count: function (v) { return v == null ? "–" : String(Math.round(v * 100) / 100); }
  };

  function options(chart, width) {
    var fmt = UNITS[chart.unit] || UNITS.count;
    var series = [{ label: "time" }];
    chart.series.forEach(function (s, i) {
      // a series with few values (latency only where requests ran) shows them as points
      var known = s.values.filter(function (v) { return v != null; }).length;
      series.push({ label: s.label, stroke: PALETTE[i % PALETTE.length], width: 1.5,
                    points: { show: known * 3 <= chart.x.length, size: 6 },
                    value: function (u, v) { return fmt(v); } });
    });
    return {
      width: width, height: 200, series: series,
      scales: { x: { time: true },
                y: { range: function (u, min, max) {
                  var top = chart.unit === "ratio" ? Math.max(max || 0, 0.05) : (max || 1);
                  return [0, top * 1.1];
                } } },
      axes: [{}, { values: function (u, ticks) { return ticks.map(fmt); }, size: 80 }],
      legend: { live: true }
    };
  }

  function draw() {
    var source = document.getElementById("chart-data");
    if (!source || typeof uPlot === "undefined") { return; }
    var charts = JSON.parse(source.textContent);
    charts.forEach(function (chart) {
      var box = document.querySelector('[data-chart="' + chart.id + '"]');
      if (!box) { return; }
      var data = [chart.x].concat(chart.series.map(function (s) { return s.values; }));
      var plot = new uPlot(options(chart, Math.max(box.clientWidth - 12, 300)), data, box);
      box.setAttribute("data-drawn", String(chart.x.length));
      window.addEventListener("resize", function () {
        plot.setSize({ width: Math.max(box.clientWidth - 12, 300), height: 200 });
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
