"""Getting studies back from any copy, each instance verified as it is uploaded."""
