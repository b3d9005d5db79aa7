"""App Store: Server Notifications V2 and StoreKit 2 signed transactions."""
