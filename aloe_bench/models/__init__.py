"""The model layer every role goes through: backends by spec, role bindings, the call cache,
portable spec names and prices."""
