-- 0005: the MCP servers the backend started for a session (JSON list of McpServer) and
-- their counts for the session list.
ALTER TABLE sessions ADD COLUMN mcp_servers TEXT;
ALTER TABLE sessions ADD COLUMN mcp_server_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN mcp_failed_count INTEGER NOT NULL DEFAULT 0;
