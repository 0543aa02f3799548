"""The CTI layer: the wire protocol (`protocol`) and one seat's session (`client`)."""
