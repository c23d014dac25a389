# nixpkgs-python as a flake: the same sets, built the same way, as `import ./. { }`.
#
#   nix build .#pytest-py312            the pytest set's environment for Python 3.12
#   nix build .#pytest                  ... for its newest Python
#   nix run . -- sets                   the bot
#   nix flake check                     every set's environment, evaluated (and built for
#                                       this system)
#
# nixpkgs is NOT a flake input: it is the pin in nix/nixpkgs.json (through nix/nixpkgs.nix),
# the one source of truth that default.nix, the nightly and the binary cache use and that
# `nixpkgs-python nixpkgs update` moves.  A second pin in flake.lock could drift from it, and
# then `nix build .#x` would miss the cache that `nix-build -A x` hits.  To build with your
# own nixpkgs, use `lib.sets { pkgs = ...; }` or the overlay's `pythonSetsFromThisNixpkgs`.
{
  description = "Grouped Python package sets for Nix, re-locked and built nightly";

  # The binary cache the nightly fills (its key is nix/cache-key.pub).  Nix asks before using
  # these unless you pass --accept-flake-config; a user who is not in trusted-users gets them
  # only when nix.conf already lists the substituter in trusted-substituters (README).
  nixConfig = {
    extra-substituters = [ "https://cache-host.invalid" ];
    extra-trusted-public-keys = [ "nixpkgs-python-1:xHBb+glNHMajYVCCdtyAWNmAIxSzhfKmVC4c92tHe2g=" ];
  };

  outputs = { self }:
    let
      lib = import ./nix/lib.nix;
      setsLib = import ./nix/sets.nix;
      # The systems are the ones the locks were made for (the pinned release's row in
      # bot/model/nixpkgs.py, recorded in every lock's [tool.nixpkgs-python].systems).
      found = setsLib.discover ./sets;
      lockOf = name: version: ./sets + "/${name}/pylock.py${lib.versionTag version}.toml";
      lockSystems = builtins.concatMap
        (name: builtins.concatMap
          (v: ((builtins.fromTOML (builtins.readFile (lockOf name v))).tool.nixpkgs-python.systems or [ ]))
          found.${name})
        (builtins.attrNames found);
      systems = builtins.attrNames (builtins.listToAttrs (map (s: { name = s; value = null; }) lockSystems));
      forAll = f: builtins.listToAttrs (map (system: { name = system; value = f system; }) systems);

      pkgsFor = system: import ./nix/nixpkgs.nix { inherit system; };
      # the sets as default.nix gives them (pure: no standalone interpreters from nix/local.json)
      setsFor = system: import ./default.nix { inherit system; pkgs = pkgsFor system; interpreters = { }; };

      setsBySystem = forAll setsFor;

      # { "<set>-py3XY" = env; "<set>" = env of the newest Python; }
      environments = system:
        let sets = setsBySystem.${system}; in
        builtins.listToAttrs (builtins.concatMap
          (name:
            [{ inherit name; value = sets.${name}.python; }]
            ++ map (v: { name = "${name}-py${lib.versionTag v}"; value = sets.${name}."py${lib.versionTag v}".python; }) found.${name})
          (builtins.attrNames sets));
      # evaluated once per system, shared by packages, checks and hydraJobs
      envsBySystem = forAll environments;

      # the bot, from the pinned nixpkgs' Python packages
      botFor = system:
        let
          pkgs = pkgsFor system;
          ps = pkgs.python3.pkgs;
        in
        ps.buildPythonApplication {
          pname = "nixpkgs-python";
          version = (builtins.fromTOML (builtins.readFile ./pyproject.toml)).project.version;
          pyproject = true;
          src = builtins.path {
            path = ./.;
            name = "nixpkgs-python-source";
            filter = path: _type:
              builtins.elem (baseNameOf path) [ "bot" "pyproject.toml" "README.md" ]
              || builtins.match ".*/bot/.*" path != null;
          };
          build-system = [ ps.setuptools ];
          dependencies = with ps; [ click pyyaml packaging resolvelib rich pygithub gitpython tomli-w build pyproject-hooks ];
          pythonRelaxDeps = true;
          # the bot drives nix, git, rsync and ssh: the user's own
          meta.mainProgram = "nixpkgs-python";
        };
    in
    {
      # every set's environment per Python, plus the bot
      packages = builtins.mapAttrs (system: envs: envs // { default = botFor system; }) envsBySystem;

      # the sets as today's tree: legacyPackages.<system>.pytest.py312.packages.pytest
      legacyPackages = setsBySystem;

      # pythonSets (the pinned nixpkgs: what the cache has) and pythonSetsFromThisNixpkgs
      overlays.default = import ./overlay.nix;

      lib = {
        # build a set from a pylock, as `nixpkgs-python generate` does:
        #   lib.mkSet { lockFile = ./pylock.toml; pkgs = nixpkgs.legacyPackages.${system}; }
        # (pkgs defaults to the pin for `system`; overrides: self: super: { ... }, applied
        # after this repository's overrides library)
        mkSet =
          { lockFile
          , system ? null
          , pkgs ? (if system != null then pkgsFor system else throw "nixpkgs-python: lib.mkSet needs `pkgs` or `system`")
          , overrides ? (self: super: { })
          , disabledOverrides ? [ ]
          }:
          (import ./nix/set.nix).mkSet {
            inherit lockFile pkgs disabledOverrides;
            overridesDir = ./overrides;
            overlays = [ overrides ];
          };
        # every set, with default.nix's arguments (pkgs, nixpkgs, system, overrides, ...)
        sets = args: import ./default.nix ({ interpreters = { }; } // args);
        # the pinned nixpkgs for a system
        nixpkgsFor = pkgsFor;
        inherit systems;
      };

      apps = forAll (system: {
        default = { type = "app"; program = "${botFor system}/bin/nixpkgs-python"; };
      });

      # building a set's environment import-checks every package against it
      checks = envsBySystem;

      # hydraJobs.<set>-py3XY.<system>: every set x Python x system
      hydraJobs =
        builtins.listToAttrs (map
          (job: { name = job; value = builtins.mapAttrs (_: envs: envs.${job}) envsBySystem; })
          (builtins.filter (n: builtins.match ".*-py3[0-9]+" n != null)
            (builtins.attrNames envsBySystem.${builtins.head systems})));

      devShells = forAll (system:
        let pkgs = pkgsFor system; in
        {
          default = pkgs.mkShell {
            packages = [
              (pkgs.python312.withPackages (ps: with ps; [ click pyyaml packaging resolvelib rich pygithub gitpython tomli-w build pyproject-hooks pytest mypy ]))
              pkgs.ruff
              pkgs.uv
              pkgs.rsync
              pkgs.openssh
              pkgs.git
            ];
          };
        });

      formatter = forAll (system: (pkgsFor system).nixpkgs-fmt);
    };
}
