"""Quotes and valuations: signed prices for the order service, portfolio values for the user service."""
