"""The HTTP gateway: OpenAI- and Anthropic-compatible endpoints; the only place that knows HTTP statuses."""
