"""``orbitdock-mcp``: the MCP server agents use to supervise agents (``server``), over the
tools' logic (``tools``)."""
