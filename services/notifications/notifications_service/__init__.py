"""The notifications service: signed webhooks (Standard Webhooks) for partners, provinces and ops."""
