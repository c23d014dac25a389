# Discovering sets: every `<setsDir>/<name>/pylock.py3XY.toml`.
# The Python side of the same layout is bot/model/locks.py: keep the two in step.
let
  lib = import ./lib.nix;
  setLib = import ./set.nix;
in
rec {
  # { <name> = [ "3.12" "3.13" ]; } (sorted), for set directories with at least one lock.
  discover = setsDir:
    let
      dir = lib.toPath setsDir;
      entries = if builtins.pathExists dir then builtins.readDir dir else { };
      dirs = builtins.attrNames (lib.filterAttrs (_: t: t == "directory") entries);
      versionsIn = name:
        let
          files = builtins.attrNames (builtins.readDir (dir + "/${name}"));
          minors = builtins.concatMap
            (f: let m = builtins.match "pylock\\.py3([0-9]+)\\.toml" f; in if m == null then [ ] else [ (builtins.fromJSON (builtins.head m)) ])
            files;
        in
        map (m: "3.${toString m}") (builtins.sort builtins.lessThan minors);
      found = map (name: { inherit name; value = versionsIn name; }) dirs;
    in
    builtins.listToAttrs (builtins.filter (x: x.value != [ ]) found);

  # Every set for every locked Python: `<name>` is the newest Python, with `py3XY` attributes.
  # disabledOverrides: data entries left out of every set ([ "<package>#<n>" ], see
  # overrides.nix parseIds), for re-validating the overrides library.
  all = { setsDir, overridesDir, pkgs, interpreters, overrides, disabledOverrides ? [ ] }:
    builtins.mapAttrs
      (name: versions:
        let
          dir = lib.toPath setsDir + "/${name}";
          setOverlay = dir + "/overrides.nix";
          # the set's own overrides may only touch packages the set has (a typo must not
          # silently add a package, nor end in a bare "attribute missing")
          checked = version: self: super:
            let
              result = (import setOverlay) self super;
              unknown = builtins.filter (n: !(super ? ${n})) (builtins.attrNames result);
            in
            if unknown == [ ] then result
            else throw "nixpkgs-python: set '${name}' (Python ${version}): sets/${name}/overrides.nix overrides ${builtins.concatStringsSep ", " (map (n: "package '${n}'") unknown)}, which the set does not have";
          bySet = version: setLib.mkSet {
            lockFile = dir + "/pylock.py${lib.versionTag version}.toml";
            inherit pkgs interpreters overridesDir disabledOverrides;
            overlays = (if builtins.pathExists setOverlay then [ (checked version) ] else [ ]) ++ [ overrides ];
          };
          perVersion = builtins.listToAttrs (map (v: { name = "py${lib.versionTag v}"; value = bySet v; }) versions);
          newest = builtins.elemAt versions (builtins.length versions - 1);
        in
        perVersion.${"py${lib.versionTag newest}"} // perVersion)
      (discover setsDir);
}
