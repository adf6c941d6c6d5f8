"""Pictures that need the engine or the phantom to run (measuring, not reporting): the transform gallery
(:mod:`~spineaug.preview.gallery`, ``spineaug preview``) and the phantom's domains
(:mod:`~spineaug.preview.phantom`, ``spineaug preview --phantom``). Their PNGs (and the phantom's JSON) are committed
under ``reports/``; the report links them and never runs them."""
