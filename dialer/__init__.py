"""dialer: an outbound campaign and predictive dialer for the 赛普智成 CTI softphone server."""

__version__ = "0.1.0"
