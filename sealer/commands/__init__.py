"""One module per command: each turns parsed arguments into calls below and renders results."""
