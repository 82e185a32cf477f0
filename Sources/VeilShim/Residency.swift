import CVeilLinux
import Glibc
import VeilLinux

/// Gives memory back once the shim has been quiet for a while: the executable's clean code pages
/// (the page cache keeps them; the next request maps what it needs again) and malloc's free
/// memory. A shim spends nearly all its life waiting, so this is its resident size most of the time.
/// It trims 2 s after the last request, and again 10 s later: idle Dispatch worker threads exit
/// about 5 s after their last job, and their exit path maps code again.
final class IdleTrimmer: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    /// Bumped by every request.
    private var activity: UInt64 = 1
    /// `activity` at the last trim.
    private var trimmedAt: UInt64 = 0
    /// Seconds of quiet before each trim.
    private let delays: [Int]

    init(delays: [Int] = [2, 10]) {
        self.delays = delays
        pthread_mutex_init(&mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(&condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    /// Starts the trimming thread (a small stack: it only waits and calls madvise).
    func start() {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        pthread_attr_setstacksize(&attributes, 64 << 10)
        defer { pthread_attr_destroy(&attributes) }
        var thread = pthread_t()
        let box = Unmanaged.passRetained(self).toOpaque()
        let created = pthread_create(&thread, &attributes, { argument in
            guard let argument else { return nil }
            Unmanaged<IdleTrimmer>.fromOpaque(argument).takeRetainedValue().loop()
            return nil
        }, box)
        if created == 0 { pthread_detach(thread) } else { Unmanaged<IdleTrimmer>.fromOpaque(box).release() }
    }

    /// A request arrived: trim again once it and its successors are done.
    func noteActivity() {
        pthread_mutex_lock(&mutex)
        activity &+= 1
        pthread_cond_signal(&condition)
        pthread_mutex_unlock(&mutex)
    }

    private func loop() -> Never {
        pthread_mutex_lock(&mutex)
        while true {
            while activity == trimmedAt { pthread_cond_wait(&condition, &mutex) }
            let seen = activity
            for delay in delays {
                // Quiet for `delay` seconds more: no request since `seen`.
                var deadline = timespec()
                clock_gettime(CLOCK_MONOTONIC, &deadline)
                deadline.tv_sec += delay
                while activity == seen && pthread_cond_timedwait(&condition, &mutex, &deadline) != ETIMEDOUT {}
                guard activity == seen else { break }
                pthread_mutex_unlock(&mutex)
                Residency.trim()
                pthread_mutex_lock(&mutex)
            }
            if activity == seen { trimmedAt = seen }
        }
    }
}
