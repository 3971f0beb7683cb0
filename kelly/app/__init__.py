"""Kelly's companion web app: the server, and the library that keeps every composition a user makes."""
