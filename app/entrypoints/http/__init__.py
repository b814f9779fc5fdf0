"""HTTP entrypoints served by Connexion from contracts/openapi.yaml."""
