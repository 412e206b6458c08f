from bsim.cli import main

raise SystemExit(main())
