"""The HTTP gateway: OpenAI- and Anthropic-compatible endpoints.

The only place that knows HTTP status codes.
"""
