"""Poll to push: what observers know of members, and the events about them."""
