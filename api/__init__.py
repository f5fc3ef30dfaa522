"""The HTTP and WebSocket api."""
