"""The failure scenarios of the seed: what each damages, which layer recovers, default objectives."""
