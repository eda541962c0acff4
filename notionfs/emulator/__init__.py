"""A local Notion: API emulator, signed-URL file host, sample and demo workspaces."""
