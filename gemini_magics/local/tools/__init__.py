"""What the local server's built-in tools really do: run code in a subprocess, fetch URLs."""
