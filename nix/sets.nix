# Discovering sets: every `<setsDir>/<name>/pylock.py3XY.toml`.
# The Python side of the same layout is bot/model/locks.py: keep the two in step.
let
  lib = import ./lib.nix;
  lockLib = import ./lock.nix;
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
  # overrides: the user's overlay, applied last (README "Overrides"): either one
  # `self: super: { ... }` for every set, or `{ <set> = self: super: { ... }; }` per set.  One
  # overlay meets sets (and Pythons, and systems) that hold different packages: in each, the
  # names it gives that this set lacks are left out, and a name no lock has at all (of any
  # set, for the one overlay; of that set, for a set's own) is an error, not silently nothing.
  all = { setsDir, overridesDir, pkgs, interpreters, overrides, disabledOverrides ? [ ] }:
    let
      found = discover setsDir;
      setNames = builtins.attrNames found;
      lockOf = name: version: lib.toPath setsDir + "/${name}/pylock.py${lib.versionTag version}.toml";
      # every package name a set's locks hold, for any Python and system
      namesOf = name: builtins.listToAttrs (builtins.concatMap
        (v: map (p: { name = p.name; value = null; }) ((lockLib.read (lockOf name v)).packages or [ ]))
        found.${name});
      everyName = builtins.foldl' (acc: name: acc // namesOf name) { } setNames;
      # `overlay` (`what`, for the error) with the names `super` lacks left out; a name not in
      # `known` (`where`: the locks it was looked for in) is an error
      lenient = what: where: known: overlay: self: super:
        let
          result = overlay self super;
          absent = builtins.filter (n: !(super ? ${n})) (builtins.attrNames result);
          unknown = builtins.filter (n: !(known ? ${n})) absent;
        in
        if unknown != [ ] then throw "nixpkgs-python: ${what} overrides ${builtins.concatStringsSep ", " (map (n: "package '${n}'") unknown)}, which ${where} has; check the name (a package of a lock, sets/<set>/pylock.py3XY.toml)"
        else if absent == [ ] then result
        else lib.filterAttrs (n: _: super ? ${n}) result;
      userOverlay = name:
        if builtins.isFunction overrides then lenient "`overrides`" "no lock of any set" everyName overrides
        else if !(builtins.isAttrs overrides) then throw "nixpkgs-python: `overrides` is a ${builtins.typeOf overrides}; give `self: super: { ... }` (every set) or `{ <set> = self: super: { ... }; }` (per set)"
        else
          let stray = builtins.filter (n: !(found ? ${n})) (builtins.attrNames overrides); in
          if stray != [ ] then throw "nixpkgs-python: `overrides` has ${builtins.concatStringsSep ", " (map (n: "'${n}'") stray)}, which ${if builtins.length stray == 1 then "is" else "are"} not a set (${toString setsDir} has ${builtins.concatStringsSep ", " setNames}); give `{ <set> = self: super: { ... }; }`, or one `self: super: { ... }` for every set"
          else if !(overrides ? ${name}) then (self: super: { })
          else if !(builtins.isFunction overrides.${name}) then throw "nixpkgs-python: `overrides.${name}` is a ${builtins.typeOf overrides.${name}}; give `self: super: { ... }`"
          else lenient "`overrides.${name}`" "no lock of set '${name}'" (namesOf name) overrides.${name};
    in
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
            lockFile = lockOf name version;
            inherit pkgs interpreters overridesDir disabledOverrides;
            overlays = (if builtins.pathExists setOverlay then [ (checked version) ] else [ ]) ++ [ (userOverlay name) ];
          };
          perVersion = builtins.listToAttrs (map (v: { name = "py${lib.versionTag v}"; value = bySet v; }) versions);
          newest = builtins.elemAt versions (builtins.length versions - 1);
        in
        perVersion.${"py${lib.versionTag newest}"} // perVersion)
      found;
}
