"""The shared kit every Recovery Platform service is built on."""
