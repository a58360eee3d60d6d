"""The live stream (issue 13): the feed poller and hub, and the SSE and WebSocket views."""
