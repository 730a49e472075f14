"""mlab: your implementations of the bootcamp's exercises, one module per day."""
