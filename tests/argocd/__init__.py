"""Argo CD's Lua health checks run outside Argo CD: luahealth/ is a tiny Go program on gopher-lua."""
