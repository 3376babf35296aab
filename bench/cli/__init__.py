"""The `bench` command: one module per command group; each parses its arguments and loads the package it
needs only when it runs, and every user-caused error becomes one line and exit status 2.

May import: every package."""
