# default.nix's `<set>.withPackages` of the one package `name`, changed with overrideAttrs (a
# build attribute MARK, so its derivation is another one), and then, when `dependencies` is
# given (space-separated names, "" for none), with those runtime dependencies
# (overridePythonAttrs, which must keep the overrideAttrs change).  `package` is what was
# given to withPackages.  fake = "1": with the fake nixpkgs (nix-build cannot pass a
# function on the command line, and nix_build_cmd's `file` replaces the entry file).
{ set, name, dependencies ? null, fake ? "", ... }@args:
let
  rest = builtins.removeAttrs args [ "set" "name" "dependencies" "fake" ];
  sets = if fake == "1" then import ./with-fake-nixpkgs.nix rest else import ../../default.nix rest;
  marked = sets.${set}.packages.${name}.overrideAttrs (old: { MARK = "overridden"; });
  package =
    if dependencies == null then marked
    else marked.overridePythonAttrs (old: {
      dependencies = builtins.filter (n: builtins.isString n && n != "") (builtins.split " " dependencies);
    });
in
sets.${set}.withPackages (ps: [ package ]) // { inherit package; }
