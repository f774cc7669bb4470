"""CRMForge builder: turns definition files into an immutable, hashed ``AppModel``.

The builder knows nothing of Flask or databases (see ``builder/README.md``).
"""
