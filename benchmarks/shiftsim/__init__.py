"""The OB-20 shift simulation behind `benchmarks/shift_sim.py` (its command line):

    shift.py       one shift, event by event: agents (split between workers), calls on ports,
                   the policy pacing them, a restart
    day.py         the workload through the day: schedules of the answer rate and the talk mean
    calibrate.py   many shifts on a process pool, the baselines' calibration, the table's rows
"""
