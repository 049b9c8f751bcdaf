"""The ops console: a web page for operations over the services' HTTP APIs (issue 15)."""
