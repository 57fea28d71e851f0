"""`circulate api`: the HTTP enqueue API for checkout, listings and support services."""
