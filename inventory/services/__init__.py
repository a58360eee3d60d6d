"""What views and the CLI ask for: catalog reads and writes, history, quotes and valuations,
categories, tokens; built once per worker process by the app factory."""
