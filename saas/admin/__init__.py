"""The platform console: the people who run Kartoteka manage every company from here (and the CLI)."""
