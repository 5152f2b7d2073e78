"""Claude Code: hook payloads and transcripts as backend events (pure), the hook
forwarder (``orbitdock.claude.forward``) and its spool, the settings installer."""
