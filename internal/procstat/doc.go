// Package procstat reads what a Linux process costs from /proc, for wharf's tools (bench and stress): CPU
// time per thread (/proc/PID/task/TID/schedstat, in nanoseconds), memory (resident, peak and proportional
// set sizes), open descriptors, thread states, the tree of processes below a server, and how one core spent
// its time (/proc/stat). Exits reports the CPU time of tasks that end, from the kernel's taskstats exit
// reports: a forking server's session processes may die without their time reaching anyone's cumulative
// children fields (vsftpd's do, with their PID namespace).
//
// Every reader takes a process ID and returns an error when the process is gone, which is how a tool
// tells a session process that has just exited.
package procstat
