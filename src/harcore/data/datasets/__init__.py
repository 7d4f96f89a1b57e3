"""The individual dataset loaders; each returns a :class:`harcore.data.dataset.WindowSet`."""
