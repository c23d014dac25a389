# The Nix library, one concern per file.
{
  lib = import ./lib.nix;
  lock = import ./lock.nix;
  fetch = import ./fetch.nix;
  interpreter = import ./interpreter.nix;
  overrides = import ./overrides.nix;
  package = import ./package.nix;
  env = import ./env.nix;
  inherit (import ./set.nix) mkSet;
  sets = import ./sets.nix;
}
