# The shipped overrides library as the Nix library reads it: { <name> = [ reason ... ]; }.
builtins.mapAttrs (_: map (e: e.reason)) ((import ../.).overrides.loadData ../../overrides)
