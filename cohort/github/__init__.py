"""Talking to GitHub: a REST client on urllib that honours rate limits and paces writes
(`client`), the token and its scopes (`auth`), and git over HTTPS with that token (`git`)."""
