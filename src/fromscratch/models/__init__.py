"""One module per model family; chapters import from here, later chapters reuse them."""
