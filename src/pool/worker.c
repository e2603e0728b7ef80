#include "pool/worker.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

struct job {
	pool_job_fn fn;
	pool_done_fn done;
	void *arg;
	struct job *next;
};

struct fifo {
	struct job *head, *tail;
};

struct pool_worker {
	char name[32];
	void *ctx;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct fifo todo, finished;     /* under lock */
	size_t pending;                 /* under lock */
	bool stop;
	int pipe[2];                    /* the thread's wake-up of the loop */
	struct event *ev;
};

static void fifo_push(struct fifo *f, struct job *j)
{
	j->next = NULL;
	if (f->tail)
		f->tail->next = j;
	else
		f->head = j;
	f->tail = j;
}

static struct job *fifo_pop(struct fifo *f)
{
	struct job *j = f->head;

	if (j) {
		f->head = j->next;
		if (!f->head)
			f->tail = NULL;
	}
	return j;
}

static void *run(void *arg)
{
	struct pool_worker *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct job *j;

		while (!w->todo.head && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		j = fifo_pop(&w->todo);
		if (!j)
			break;                  /* stop, and nothing left */
		pthread_mutex_unlock(&w->lock);
		j->fn(w->ctx, j->arg);
		pthread_mutex_lock(&w->lock);
		fifo_push(&w->finished, j);
		/* A full pipe already holds a wake-up: nothing is lost. */
		if (write(w->pipe[1], "", 1) < 0 && errno != EAGAIN)
			log_warn("pool worker %s: cannot wake the loop: %s", w->name, strerror(errno));
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct pool_worker *w = arg;
	char buf[256];
	struct fifo done;

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&w->lock);
	done = w->finished;
	w->finished.head = w->finished.tail = NULL;
	pthread_mutex_unlock(&w->lock);
	for (struct job *j; (j = fifo_pop(&done));) {
		pthread_mutex_lock(&w->lock);
		w->pending--;
		pthread_mutex_unlock(&w->lock);
		if (j->done)
			j->done(j->arg);
		free(j);
	}
}

struct pool_worker *pool_worker_new(struct event_base *base, const char *name, void *ctx)
{
	struct pool_worker *w = calloc(1, sizeof(*w));

	if (!w) {
		log_error("pool worker %s: out of memory", name);
		return NULL;
	}
	snprintf(w->name, sizeof(w->name), "%s", name);
	w->ctx = ctx;
	w->pipe[0] = w->pipe[1] = -1;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	if (pipe2(w->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		log_error("pool worker %s: pipe: %s", name, strerror(errno));
		goto fail;
	}
	w->ev = event_new(base, w->pipe[0], EV_READ | EV_PERSIST, on_wake, w);
	if (!w->ev || event_add(w->ev, NULL) < 0) {
		log_error("pool worker %s: cannot watch its pipe", name);
		goto fail;
	}
	if ((errno = pthread_create(&w->thread, NULL, run, w))) {
		log_error("pool worker %s: cannot start a thread: %s", name, strerror(errno));
		goto fail;
	}
	return w;
fail:
	if (w->ev)
		event_free(w->ev);
	if (w->pipe[0] >= 0)
		close(w->pipe[0]), close(w->pipe[1]);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
	return NULL;
}

int pool_worker_post(struct pool_worker *w, pool_job_fn fn, pool_done_fn done, void *arg)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j) {
		log_error("pool worker %s: out of memory", w->name);
		return -1;
	}
	j->fn = fn;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&w->lock);
	if (w->stop) {
		/* Being freed: the thread may be gone, the job would never run
		 * nor be freed. */
		pthread_mutex_unlock(&w->lock);
		free(j);
		log_error("pool worker %s: stopped, job refused", w->name);
		return -1;
	}
	fifo_push(&w->todo, j);
	w->pending++;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

size_t pool_worker_pending(const struct pool_worker *w)
{
	size_t n;

	pthread_mutex_lock((pthread_mutex_t *)&w->lock);
	n = w->pending;
	pthread_mutex_unlock((pthread_mutex_t *)&w->lock);
	return n;
}

void pool_worker_free(struct pool_worker *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	/* The done callbacks own their args: they run, so nothing leaks. */
	for (struct job *j; (j = fifo_pop(&w->finished));) {
		if (j->done)
			j->done(j->arg);
		free(j);
	}
	event_free(w->ev);
	close(w->pipe[0]);
	close(w->pipe[1]);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
