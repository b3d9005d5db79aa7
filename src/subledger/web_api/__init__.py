"""The Web API: what web pages and web-to-app funnels call from a browser with an app's public key
(a placement's paywall, paywall visits, attribution)."""
