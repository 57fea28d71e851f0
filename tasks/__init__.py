"""What gets done: each marketplace domain's logic and its actors."""
