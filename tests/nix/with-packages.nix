# default.nix's `<set>.withPackages` for the space-separated package `names` (tests use it:
# nix-build cannot pass a function on the command line).
{ set, names, ... }@args:
let
  sets = import ../../default.nix (builtins.removeAttrs args [ "set" "names" ]);
  selected = builtins.filter builtins.isString (builtins.split " " names);
in
sets.${set}.withPackages (ps: map (n: ps.${n}) selected)
