self: super: { extra = "from overrides/default.nix"; }
