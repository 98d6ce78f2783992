"""The window's panes, one module each; every pane calls boltzmatch's public API in a worker."""
