"""Remote callers: moshi's websocket protocol, entropi's own web page and its live feed.

``protocol`` holds the wire format and the checks on a caller's request, ``app`` the aiohttp
server (one caller at a time), ``feed`` the live view's event stream. The audio of a call
reaches the controller through :class:`entropi.transports.websocket.transport.WebSocketTransport`.
"""
