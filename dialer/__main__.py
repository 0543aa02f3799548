from dialer.cli import main

if __name__ == "__main__":  # a spawned child (the simulator's own process) imports this too
    main()
