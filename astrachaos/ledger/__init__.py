"""The durable, append-only record of every intended write: schema, writer, reader."""
