"""offerflow: which customer gets which offer, within a budget."""
