"""What an app sells: access levels, products, and the exchange rates prices convert with."""
